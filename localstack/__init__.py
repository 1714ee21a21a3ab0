"""Running lbctl's AWS side without AWS: LocalStack (Docker, Pro edition) or a moto server on
LocalStack's port, and the world both are seeded with (`localstack.world`)."""
