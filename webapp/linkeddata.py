"""stub"""
from flask import Blueprint

bp = Blueprint("linkeddata", __name__)
