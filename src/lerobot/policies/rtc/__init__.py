"""Real-time chunking (RTC): ``configuration_rtc`` (``RTCConfig``, no torch) and ``modeling_rtc`` (the guidance)."""
