"""webrtc package."""
