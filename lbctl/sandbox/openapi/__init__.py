"""The API's self-description: the 1.33 OpenAPI documents, discovery, and schema validation.

`spec` loads the published 1.33 definitions (kubernetes-validate's copy); `schema` decodes and
validates bodies against them (unknown fields, types); `docs`, `paths`, `schemas` and `proto`
build OpenAPI v2 (JSON and protobuf) and v3 for `kubectl explain` and client-side validation;
`discovery` and `discovery_aggregated` serve `/api`, `/apis` and the aggregated form.
"""
