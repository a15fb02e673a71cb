from marshmallow_jsonapi import Schema, fields


class TopicSchema(Schema):
    """A topic devices subscribe to; its id is its name (FCM's rules). No attributes."""

    id = fields.Str(attribute="topic", dump_only=True)

    class Meta:
        type_ = "topics"
