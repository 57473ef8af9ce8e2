"""G41 (故障排查 / 常见问题): list the serial ports; give the user access to them (Linux).

The python fence ends with two ``sudo`` shell lines (rule in README: split by language; they change
the system's users and device permissions, so they are not run as root by a test; the test checks
that they are well-formed commands for a shell). The Python part runs.
"""

import shlex
import shutil


def test_g41_serial_ports(capsys):
    # --- the block: its Python ---
    # 检查端口
    import serial.tools.list_ports
    ports = serial.tools.list_ports.comports()
    for port in ports:
        print(f"{port.device}: {port.description}")

    # --- its shell lines (not run: sudo as root) ---
    shell = """
# 设置权限（Linux）
sudo usermod -a -G dialout $USER
sudo chmod 666 /dev/ttyUSB0
"""
    commands = [shlex.split(line) for line in shell.splitlines() if line and not line.startswith("#")]
    assert [c[:2] for c in commands] == [["sudo", "usermod"], ["sudo", "chmod"]]
    assert isinstance(ports, list) and capsys.readouterr().out.count("\n") == len(ports)
    assert shutil.which("sh") is not None
