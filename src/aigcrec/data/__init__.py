"""aigcrec.data"""
