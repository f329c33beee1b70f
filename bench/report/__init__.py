"""What ``labral bench`` shows people: report.html, its sections, the terminal table."""
