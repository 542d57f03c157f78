"""Software-defined assets, one module per layer; they are thin and call the domain modules."""
