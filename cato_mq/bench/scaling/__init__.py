"""``cato-mq bench-scaling``: scaling policies on real fleets (``fleet``) and on real Ray
Serve's autoscaler (``ray_autoscaler``), on one workload (``load``), tabled (``result``)
by ``main``."""
