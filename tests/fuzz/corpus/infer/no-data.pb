
fuzz1seed*
inputFP32