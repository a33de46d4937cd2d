"""Department authorization agreements (授权运营协议)."""
