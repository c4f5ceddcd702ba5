/* x509util.h: placeholder */
