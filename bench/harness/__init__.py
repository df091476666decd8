"""The bench harness (bench/run.py drives it): its own PostgreSQL databases and RabbitMQ virtual host, gunicorn
with production settings on a spare loopback port, a bare-DRF ceiling app built in the same run, wrk at 16
connections, RSS of the worker processes, and figures printed with their baseline and written as JSON."""
