"""Query parameters: include, fields, sort, page, filter — parsed once, checked per endpoint."""

import re
from dataclasses import dataclass, field
from typing import Any

from app.errors import InvalidQueryParameter
from app.formats.ids import whole_number
from app.resources.listing import Listing, PageRequest

# A legal member name (spec "Member Names"): globally allowed characters at both ends,
# '-', '_' and ' ' only inside.
_ALLOWED = r"A-Za-z0-9\u0080-\U0010ffff"
_MEMBER = rf"[{_ALLOWED}](?:[{_ALLOWED}_ -]*[{_ALLOWED}])?"
# A query parameter family member: a legal base name, then zero or more brackets each
# empty or holding a dot-separated list of legal member names ("Query Parameter Families").
FAMILY = re.compile(rf"^({_MEMBER})((?:\[(?:{_MEMBER}(?:\.{_MEMBER})*)?\])*)$")
BRACKETED = re.compile(r"\[([^\[\]]*)\]")
RESERVED_NAME = re.compile(r"^[a-z]+$")


@dataclass
class Query:
    """The query parameters of one request: include and fields for the document, and the
    collection's listing (filters, order, page) as plain values for the services."""

    include: tuple[tuple[str, ...], ...] = ()
    include_requested: bool = False
    fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sort: tuple[tuple[str, bool], ...] = ()
    page: dict[str, Any] = field(default_factory=dict)  # PageRequest's keyword arguments
    filters: dict[str, str] = field(default_factory=dict)

    @property
    def listing(self):
        return Listing(filters=self.filters, order=self.sort, page=PageRequest(**self.page),
                       load=self.include)


@dataclass(frozen=True)
class Capabilities:
    """What one endpoint accepts, beside include and fields which every endpoint takes."""

    collection: bool = False
    sortable: tuple[str, ...] = ()
    filterable: tuple[str, ...] = ()


def parse_query(args, capabilities, registry, primary_type, config):
    query = Query()
    for name in args:
        match = FAMILY.match(name)
        if not match:
            raise InvalidQueryParameter(f"'{name}' is not a valid query parameter name.",
                                        field=name)
        family, brackets = match.groups()
        members = BRACKETED.findall(brackets)
        member = members[0] if members else None
        handler = _HANDLERS.get((family, member is not None)) if len(members) < 2 else None
        if handler is None:
            if not RESERVED_NAME.match(family):
                continue  # implementation-specific parameter this server does not use
            raise InvalidQueryParameter(f"The query parameter '{name}' is not supported.",
                                        field=name)
        handler(query, name, member, _single(args, name), capabilities, registry, config)
    _check_include(query, registry, primary_type, config)
    _check_fields(query, registry)
    if capabilities.collection:
        query.page.setdefault("size", config["PAGE_SIZE_DEFAULT"])
    return query


def _single(args, name):
    values = args.getlist(name)
    if len(values) != 1:
        raise InvalidQueryParameter(f"'{name}' may be given only once.", field=name)
    return values[0]


def _include(query, name, _member, value, *_):
    query.include_requested = True
    paths = [part.strip() for part in value.split(",") if part.strip()]
    query.include = tuple(tuple(path.split(".")) for path in paths)


def _fields(query, name, member, value, *_):
    query.fields[member] = tuple(part.strip() for part in value.split(",") if part.strip())


def _sort(query, name, _member, value, capabilities, *_):
    _require_collection(name, capabilities)
    keys = []
    for part in value.split(","):
        key = part.strip()
        descending = key.startswith("-")
        key = key[1:] if descending else key  # one '-' only: "--created_at" is no field
        if key not in capabilities.sortable:
            allowed = ", ".join(capabilities.sortable) or "nothing"
            raise InvalidQueryParameter(
                f"Sorting by '{key}' is not supported; sortable: {allowed}.", field=name)
        keys.append((key, descending))
    query.sort = tuple(keys)


def _page(query, name, member, value, capabilities, _registry, config):
    _require_collection(name, capabilities)
    if member == "size":
        query.page["size"] = _page_size(name, value, config["PAGE_SIZE_MAX"])
    elif member in ("after", "before"):
        query.page[member] = value
    elif member == "total":
        if value not in ("true", "false"):
            raise InvalidQueryParameter("page[total] is true or false.", field=name)
        query.page["want_total"] = value == "true"
    else:
        raise InvalidQueryParameter(
            f"'{name}' is not supported; use page[size], page[after], page[before], "
            "page[total].", field=name)
    if "after" in query.page and "before" in query.page:
        raise InvalidQueryParameter("Give page[after] or page[before], not both.",
                                    field=name)


def _page_size(name, value, maximum):
    size = whole_number(value, maximum)
    if not size:
        raise InvalidQueryParameter(f"page[size] is a whole number from 1 to {maximum}.",
                                    field=name)
    return size


def _filter(query, name, member, value, capabilities, *_):
    if not capabilities.filterable:  # a filtered single resource has some
        _require_collection(name, capabilities)
    if member not in capabilities.filterable:
        allowed = ", ".join(capabilities.filterable) or "nothing"
        raise InvalidQueryParameter(
            f"Filtering by '{member}' is not supported; filterable: {allowed}.", field=name)
    query.filters[member] = value


def _require_collection(name, capabilities):
    if not capabilities.collection:
        raise InvalidQueryParameter(f"'{name}' applies only to collections.", field=name)


_HANDLERS = {
    ("include", False): _include,
    ("fields", True): _fields,
    ("sort", False): _sort,
    ("page", True): _page,
    ("filter", True): _filter,
}


def _check_include(query, registry, primary_type, config):
    for path in query.include:
        if len(path) > config["INCLUDE_DEPTH_MAX"]:
            raise InvalidQueryParameter(
                f"Include paths may be at most {config['INCLUDE_DEPTH_MAX']} deep.",
                field="include")
        resource_type = registry[primary_type]
        for step in path:
            relationship = resource_type.relationships.get(step)
            if relationship is None:
                raise InvalidQueryParameter(
                    f"'{'.'.join(path)}' is not a relationship that can be included.",
                    field="include")
            resource_type = registry[relationship.type]


def _check_fields(query, registry):
    for type_name, names in query.fields.items():
        resource_type = registry.get(type_name)
        parameter = f"fields[{type_name}]"
        if resource_type is None:
            raise InvalidQueryParameter(f"There is no resource type '{type_name}'.",
                                        field=parameter)
        unknown = set(names) - resource_type.field_names
        if unknown:
            raise InvalidQueryParameter(
                f"{type_name} has no fields {sorted(unknown)}.", field=parameter)
