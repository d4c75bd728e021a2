"""Operations: the systemd units, checked offline and by running what they start."""
