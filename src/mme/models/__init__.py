"""mme.models"""
