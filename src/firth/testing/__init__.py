"""Firth inside other projects' tests.

Placeholder while the helpers land: ``running_broker`` and ``broker_process`` will live here.
"""
