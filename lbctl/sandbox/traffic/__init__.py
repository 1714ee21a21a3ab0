"""The sandbox's traffic side: simulated pods' servers and the nodes' kube-proxy, out of process.

A separate process (`python -m lbctl.sandbox.traffic`, or `TrafficProcess` from Python) watches
the sandbox API for Nodes, Services, Pods and EndpointSlices and makes them real on loopback:

- every Running pod on a simulated node serves its containerPorts on its podIP (HTTP naming pod
  and node on TCP, a prefixed echo on UDP);
- every simulated node serves each Service's nodePorts on its InternalIP, forwarding to ready
  endpoints (externalTrafficPolicy Local: this node's only) and answers kube-proxy's health check
  on healthCheckNodePort;
- a node annotated `sandbox.lbctl.io/stopped: "true"` stops answering anything until the
  annotation goes.

Only `TrafficProcess` is exported here, so importing it (as the sandbox app does) stays cheap.
"""

from .process import TrafficError, TrafficProcess

__all__ = ["TrafficError", "TrafficProcess"]
