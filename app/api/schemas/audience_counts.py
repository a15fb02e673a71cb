from marshmallow_jsonapi import Schema, fields


class AudienceCountSchema(Schema):
    """How many devices an audience matches now (``devices``): exact, or an estimate
    (``is_estimate``) of which ``at_least`` devices are counted exactly."""

    id = fields.Str(dump_only=True)
    audience = fields.Raw(dump_only=True)
    push_type = fields.Str(dump_only=True)
    devices = fields.Int(dump_only=True)
    is_estimate = fields.Bool(dump_only=True)
    at_least = fields.Int(dump_only=True)

    class Meta:
        type_ = "audience_counts"
