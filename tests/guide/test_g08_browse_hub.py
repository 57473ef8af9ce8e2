"""G8 (guide line 493): search the Hub for LeRobot datasets. Only huggingface.co can answer it."""

import pytest


@pytest.mark.network
def test_g08_browse_hub():
    from huggingface_hub import list_datasets

    # �索 LeRobot 数�集
    datasets = list_datasets(
        author="lerobot",
        sort="downloads",
        direction=-1
    )

    for ds in datasets:
        print(f"ğ��� {ds.id}")
        print(f"   下载�: {ds.downloads}")
        print(f"   更新时间: {ds.lastModified}")
        print()
        break  # SUBSTITUTION: the first dataset only (the guide prints every one of several thousand)

    assert ds.id.startswith("lerobot/")
