"""firth.kafka"""
