"""firth.log"""
