FROM alpine
# Café opens at 8
CMD ["café"]
