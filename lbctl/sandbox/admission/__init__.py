"""Admission: defaulting, validation and allocation per resource, as kube-apiserver's registry
strategies do it.
"""
