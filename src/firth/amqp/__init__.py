"""firth.amqp"""
