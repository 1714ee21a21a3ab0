"""Wire formats and patches: protobuf bodies, JSON/merge/strategic-merge patches, Go scalars.

`protobuf` and `protobuf_types` decode and encode the protobuf kubectl may send;
`patch`, `strategic_merge` and `strategic_merge_lists` apply the three patch types with the
schema's merge keys; `go_scalars` parses numbers and quantities as Go does; `events` converts
between core/v1 and events.k8s.io/v1 Events.
"""
