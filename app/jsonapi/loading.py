"""Eager loading for include paths, so a page with includes costs a fixed number of queries."""

from sqlalchemy import inspect
from sqlalchemy.orm import selectinload


def related_model(obj, relationship_name):
    """The model class at the other end of one of ``obj``'s ORM relationships."""
    return inspect(type(obj)).relationships[relationship_name].mapper.class_


def include_options(model, include_paths):
    options = []
    for path in include_paths:
        current_model, option = model, None
        for step in path:
            attribute = getattr(current_model, step)
            option = selectinload(attribute) if option is None else option.selectinload(attribute)
            current_model = attribute.property.mapper.class_
        options.append(option)
    return options
