"""The pytest plugin (entry point ``pytest11: firth``): fixtures that run a Firth broker.

Placeholder while the fixtures land; it must import cheaply and without side effects, because
pytest loads it in every test run of every project that has firth installed.
"""
