"""firth.amqp.protocol"""
