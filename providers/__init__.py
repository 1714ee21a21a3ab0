"""The provider interface and the provider implementations (one package each)."""
