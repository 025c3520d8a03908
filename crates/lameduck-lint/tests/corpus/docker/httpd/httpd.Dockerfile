FROM httpd:2.4
COPY ./public-html/ /usr/local/apache2/htdocs/
# The official image's own graceful stop: SIGWINCH.
STOPSIGNAL SIGWINCH
CMD ["httpd-foreground"]
