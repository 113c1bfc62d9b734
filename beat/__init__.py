"""Celery beat side of cato-mq: the provisioner (scales pools from SLA violations) lands here."""
