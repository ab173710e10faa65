"""Tweets: the message contract, synthetic tweets, replay sources, the X API client, sentiment."""
