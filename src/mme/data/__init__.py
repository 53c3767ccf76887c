"""mme.data"""
