"""marshmallow-jsonapi schemas, one module per JSON:API resource type: the attributes each type
shows and accepts. Relationships and links are drawn by ``app.jsonapi``."""
