"""lbctl: LoadBalancer Services made real on AWS, GCP, Azure and bare metal."""
