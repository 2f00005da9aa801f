"""firth.eventsourcing"""
