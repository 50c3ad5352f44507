"""What the server and the mock RADIUS server share, and nothing else: neither imports the
other, so common rules (how a YAML file is read safely) live here, free of both and of their
frameworks."""
