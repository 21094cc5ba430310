"""Pure matching logic: candidates, scoring, one-to-one assignment, tag merge, decisions.

Nothing in this package reads or writes files or talks to the network.
"""
