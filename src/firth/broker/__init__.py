"""firth.broker"""
