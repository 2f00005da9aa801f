"""firth.wire"""
