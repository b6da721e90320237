//! Serializers.
