"""The simulated venues: a small exchange per venue on loopback (`server.VenueSimulator`), each
venue's own protocols in markets/venues/<venue>/sim.py."""
