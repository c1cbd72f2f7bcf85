"""aigcrec.world"""
