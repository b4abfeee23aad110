"""Media pieces every kind of leg uses: codecs, resampling, jitter buffer and loss concealment.

Pure (no asyncio, no sockets), and below both ``gateway`` (RTP legs) and ``webrtc`` (browser
legs) so that neither copies the other's.
"""
