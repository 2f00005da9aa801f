"""firth.kafka.protocol"""
