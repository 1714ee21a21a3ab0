"""Who is asking and what they may do: authentication, RBAC, impersonation.

`authn` maps bearer tokens (admin, ServiceAccount tokens from `token_request`) to users;
`attributes` describes a request the way the authorizer sees it; `rbac` evaluates Roles and
Bindings (`bootstrap_policy`: the default ClusterRoles); `impersonation` serves `Impersonate-*`
headers; `reviews` answers SelfSubjectAccessReview and friends.
"""
