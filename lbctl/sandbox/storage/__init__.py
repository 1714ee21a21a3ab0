"""The sandbox's storage: objects, one resourceVersion counter, lists and watches.

`store` holds the objects and the change log; `registry` gives every resource the generic
create/update/delete semantics (finalizers, status subresource, optimistic concurrency) with the
per-resource `strategies`; `listing` serves lists (selectors, pagination snapshots, 410) and
starts watches (`watch`); `resources` is the table of served resources; `selectors` and
`field_selectors` parse and match label and field selectors.
"""
