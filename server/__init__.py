"""Reference implementation of the Appgate SDP Controller multi-factor login API."""
