"""What runs by itself: the new-drop sensor, the nightly schedule, the missing-drop check, and the rules for
which night a drop belongs to and whether a night is already synced."""
