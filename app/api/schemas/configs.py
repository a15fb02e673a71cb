from marshmallow_jsonapi import Schema, fields


class ConfigSchema(Schema):
    """The app configuration for one bundle version; every value comes from configuration."""

    id = fields.Str(attribute="bundle_version", dump_only=True)
    is_app_update_required = fields.Bool(dump_only=True)
    is_live = fields.Bool(dump_only=True)
    is_uploads_enabled = fields.Bool(dump_only=True)
    app_share_url = fields.Str(dump_only=True)
    multi_invite_text = fields.Str(dump_only=True)
    invite_text_body = fields.Str(dump_only=True)
    invite_share_view_description = fields.Str(dump_only=True)
    minimum_posts_hide_invite_share = fields.Int(dump_only=True)
    minimum_posted_hide_invite_share = fields.Int(dump_only=True)
    minimum_feed_hide_invite_share = fields.Int(dump_only=True)
    snap_username = fields.Str(dump_only=True)
    ig_username = fields.Str(dump_only=True)
    twitter_username = fields.Str(dump_only=True)
    default_reaction_emojis = fields.List(fields.Str(), dump_only=True)
    delete_account_available = fields.Bool(dump_only=True)
    in_app_post_message = fields.Str(dump_only=True, allow_none=True)
    onboarding_invite_user_filter = fields.Bool(dump_only=True)
    is_auto_follow_on = fields.Bool(dump_only=True)
    max_name_length = fields.Int(dump_only=True)

    class Meta:
        type_ = "configs"
