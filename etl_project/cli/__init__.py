"""The ``etl-project`` operator command line: thin commands over the same modules the assets use."""
