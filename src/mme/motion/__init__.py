"""mme.motion"""
