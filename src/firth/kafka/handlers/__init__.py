"""firth.kafka.handlers"""
